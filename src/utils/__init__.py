"""Helpers of the entry points: environment, config resolvers, instantiation, outputs."""
