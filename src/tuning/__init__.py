"""The GBU protocol in one command: references, validation search, refits, test (src.protocol)."""
