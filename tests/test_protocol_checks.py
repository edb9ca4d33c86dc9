"""Issue 17, item 7: every ``protocol.*`` value is checked before any data is read, and every
refusal (a continuation with other settings included) is one line without a traceback.

The command-line cases run the real entry point in this process (``launch`` with ``sys.argv``
set, as ``python -m src.protocol`` does after its fast start); one case starts a real process.
Every run points ``data`` at a folder without files, so a case that read data would end in a
data error instead of the refusal it expects.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
from cli_utils import launch_in_process, run_cli
from hydra_utils import compose_config

from src.cli.config_checks import VALIDATION_METRICS
from src.core.env import config_dir
from src.core.errors import ConfigError, user_message
from src.core.metric_catalogue import validation_metrics
from src.protocol import check_same_config
from src.protocol.settings import check_protocol_settings
from src.protocol.training import DataModules
from src.runs.folder import RunFolderError

CONF = config_dir()

TINY = [
    "protocol.n_trials=2",
    "protocol.searches=1",  # the default is 3
    "protocol.max_epochs=3",
    "protocol.strategies=[random]",
]
#: a dataset whose files are missing: reading it would fail with a data error
NO_DATA = ["data=cub", "data.data_dir={empty}"]
READ_DATA = "the protocol read data"


def protocol_job(cfg):
    from src.protocol import run

    return run(cfg)


@pytest.fixture
def cli(tmp_path, capfd, monkeypatch):
    """``cli(*overrides)`` → (exit status, console text): ``python -m src.protocol`` in-process,
    in ``tmp_path/run``; any data read fails the test."""
    empty = tmp_path / "empty"
    empty.mkdir()

    def no_data(*args, **kwargs):
        raise AssertionError(READ_DATA)

    monkeypatch.setattr(DataModules, "get", no_data)

    def run(*overrides: str) -> tuple[int, str]:
        args = [o.format(empty=empty) for o in (*NO_DATA, *overrides)]
        argv = ["src/protocol/pipeline.py", *args, f"hydra.run.dir={tmp_path / 'run'}"]
        return launch_in_process(protocol_job, "protocol.yaml", argv, capfd)

    return run


def assert_one_line(code: int, text: str, message: str) -> None:
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    assert code == 1, text
    assert "Traceback" not in text, text
    assert len(errors) == 1, text
    assert errors[0].startswith(f"Error: {message}"), errors[0]


REFUSED = [
    ("protocol.seeds=[1,1]", "protocol.seeds=[1, 1] is invalid: 1 appears more than once"),
    ("protocol.seeds=[1,true]", "protocol.seeds=[1, True] is invalid: use a non-empty list of"),
    ("protocol.seeds=[-1]", "protocol.seeds=[-1] is invalid"),
    ("protocol.seeds=[]", "protocol.seeds=[] is invalid"),
    ("protocol.seeds=3", "protocol.seeds=3 is invalid: use a non-empty list"),
    (
        "protocol.strategies=[random,random]",
        "protocol.strategies=['random', 'random'] is invalid: random appears more than once",
    ),
    ("protocol.strategies=[nope]", "protocol.strategies=['nope'] is invalid: use a non-empty"),
    ("protocol.objectives=[ale,nope]", "protocol.objectives=['ale', 'nope'] is invalid"),
    ("protocol.objectives=[ale,ale]", "protocol.objectives=['ale', 'ale'] is invalid"),
    ("protocol.strategies=random", "protocol.strategies='random' is invalid: use a non-empty"),
    (
        "protocol.references=[eszsl,eszsl]",
        "protocol.references=['eszsl', 'eszsl'] is invalid: eszsl appears more than once",
    ),
    ("protocol.references=[cosine]", "protocol.references=['cosine'] is invalid"),
    ("protocol.folds=[1,2,2]", "protocol.folds=[1, 2, 2] is invalid: 2 appears more than once"),
    ("protocol.folds=[4]", "protocol.folds=[4] is invalid"),
    ("protocol.folds=[true]", "protocol.folds=[True] is invalid"),
    ("protocol.ablation=maybe", "protocol.ablation='maybe' is invalid: use true or false"),
    ("protocol.ablation=1", "protocol.ablation=1 is invalid: use true or false"),
    ("protocol.threads=-2", "protocol.threads=-2 is invalid: use null"),
    ("protocol.threads=0", "protocol.threads=0 is invalid"),
    ("protocol.threads=1.5", "protocol.threads=1.5 is invalid"),
    ("protocol.selection_metric=val/nope", "protocol.selection_metric='val/nope' is invalid"),
    ("protocol.selection_metric=val/gamma", "protocol.selection_metric='val/gamma' is invalid"),
    ("protocol.selection_metric=test/zsl_acc", "protocol.selection_metric='test/zsl_acc' is"),
    ("protocol.n_trials=0", "protocol.n_trials=0 is invalid: it must be an integer ≥ 1"),
    ("protocol.n_trials=true", "protocol.n_trials=True is invalid"),
    ("protocol.max_epochs=2.5", "protocol.max_epochs=2.5 is invalid"),
    ("protocol.max_epochs=false", "protocol.max_epochs=False is invalid"),
    ("protocol.smoothing=-1", "protocol.smoothing=-1 is invalid"),
    ("protocol.smoothing=true", "protocol.smoothing=True is invalid"),
    ("protocol.smoothing=2", "protocol.smoothing=2 is invalid: use auto or an odd number"),
    ("protocol.pruner=hyper", "protocol.pruner='hyper' is invalid: use none or median"),
    ("protocol.searches=0", "protocol.searches=0 is invalid: it must be an integer ≥ 1"),
    ("protocol.searches=[1,2]", "protocol.searches=[1, 2] is invalid: it must be an integer"),
    ("protocol.smoothing=4", "protocol.smoothing=4 is invalid: use auto or an odd number"),
    (
        "protocol.storage=/nonexistent/dir/x.journal",
        "protocol.storage='/nonexistent/dir/x.journal' is invalid: its folder /nonexistent/dir "
        "does not exist",
    ),
    (
        "protocol.storage=sqlite:////nonexistent/dir/x.db",
        "protocol.storage='sqlite:////nonexistent/dir/x.db' is invalid: its folder "
        "/nonexistent/dir does not exist",
    ),
    ("protocol.storage=studies.db", "protocol.storage='studies.db' is invalid: use null"),
    pytest.param(
        "protocol.storage=postgresql://user@127.0.0.1:1/x",
        "protocol.storage='postgresql://user@127.0.0.1:1/x' is invalid: SQLAlchemy's postgresql "
        "driver needs the Python module 'psycopg', which is not installed: pip install -e "
        "'.[postgres]'",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("psycopg") is not None, reason="psycopg is installed"
        ),
    ),
    pytest.param(
        "protocol.storage=postgresql://user@127.0.0.1:1/x",
        "protocol.storage='postgresql://user@127.0.0.1:1/x' is invalid: the database server at "
        "127.0.0.1:1 does not answer (",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("psycopg") is None, reason="needs .[postgres] (psycopg)"
        ),
    ),
    (  # a folder that nobody, root included, can create a file in
        "protocol.storage=/proc/self/studies.journal",
        "protocol.storage='/proc/self/studies.journal' is invalid: /proc/self cannot be written",
    ),
    (
        "protocol.storage=sqlite:////proc/self/studies.db",
        "protocol.storage='sqlite:////proc/self/studies.db' is invalid: /proc/self cannot be "
        "written",
    ),
    (
        "protocol.storage=mysql+pymysql://u@127.0.0.1:1/x",
        "protocol.storage='mysql+pymysql://u@127.0.0.1:1/x' is invalid: SQLAlchemy's "
        "mysql+pymysql driver needs the Python module 'pymysql', which is not installed: "
        "pip install 'pymysql'",
    ),
    ("protocol.storage=nosuchdb://h/x", "protocol.storage='nosuchdb://h/x' is invalid: not a"),
    ("protocol.storage=sqlite:///", "protocol.storage='sqlite:///' is invalid: use a SQLite"),
    (
        "protocol.max_epochs_limit=10",
        "protocol.max_epochs_limit=10 is invalid: it must be an integer ≥ protocol.max_epochs (15)",
    ),
    ("protocol.max_epochs_limit=null", "protocol.max_epochs_limit=None is invalid"),
    ("protocol.bootstrap.resamples=99", "protocol.bootstrap.resamples=99 is invalid"),
    ("protocol.bootstrap.resamples=2e3", "protocol.bootstrap.resamples=2000.0 is invalid"),
    ("protocol.bootstrap.level=1", "protocol.bootstrap.level=1 is invalid: it must be a number"),
    ("protocol.bootstrap.level=0", "protocol.bootstrap.level=0 is invalid"),
    ("protocol.bootstrap.level=true", "protocol.bootstrap.level=True is invalid"),
    ("protocol.bootstrap.seed=-1", "protocol.bootstrap.seed=-1 is invalid"),
    ("protocol.bootstrap=null", "protocol.bootstrap=None is invalid"),
]


@pytest.mark.parametrize(("override", "message"), REFUSED)
def test_each_bad_protocol_value_is_refused_in_one_line_before_any_data_is_read(
    cli, override, message
):
    assert_one_line(*cli(override), message)


@pytest.mark.parametrize(("override", "message"), REFUSED)
def test_check_protocol_settings_raises_a_config_error_naming_the_key(override, message, tmp_path):
    cfg = compose_config([override], tmp_path / "run", config_name="protocol")
    with pytest.raises(ConfigError) as error:
        check_protocol_settings(cfg.protocol, CONF)
    assert str(error.value).startswith(message)
    assert user_message(error.value) == str(error.value)  # printed as it is, in one line


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["protocol.threads=null", "protocol.smoothing=3", "protocol.references=[]"],
        ["protocol.max_epochs=60", "protocol.selection_metric=val/gzsl_H_cal"],
        [
            "protocol.bootstrap.level=0.9",
            "protocol.bootstrap.resamples=100",
            "protocol.ablation=false",
        ],
    ],
)
def test_good_protocol_settings_pass(overrides, tmp_path):
    check_protocol_settings(compose_config(overrides, tmp_path / "r", "protocol").protocol, CONF)


def test_storages_in_existing_folders_pass_and_a_missing_folder_is_never_created(tmp_path, cli):
    for storage in (
        f"{tmp_path}/zsl.journal",
        f"sqlite:///{tmp_path}/zsl.db",
        "protocol.smoothing=5",
    ):
        override = storage if storage.startswith("protocol.") else f"protocol.storage={storage}"
        cfg = compose_config([override], tmp_path / "r", "protocol")
        check_protocol_settings(cfg.protocol, CONF)
    missing = tmp_path / "typo" / "dir"
    assert_one_line(*cli(f"protocol.storage={missing}/x.journal"), "protocol.storage=")
    assert not (tmp_path / "typo").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_storage_folder_is_named_before_any_data_is_read(tmp_path, cli):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert_one_line(
            *cli(f"protocol.storage={folder}/studies.journal"), f"{folder} cannot be written"
        )
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_storage_holding_another_protocols_study_is_refused(kind, tmp_path):
    """The same study name (run folder path and row) in a shared storage, opened by a protocol
    with other settings: refused naming the keys; another storage, or the same settings, open."""
    from src.protocol.study import SETTINGS_ATTR, open_study

    def storage(name: str) -> str:
        path = tmp_path / f"{name}.{'journal' if kind == 'journal' else 'db'}"
        return str(path) if kind == "journal" else f"sqlite:///{path}"

    first = {"protocol.n_trials": 24, "protocol.max_epochs": 15, "seed": 0}
    other = {**first, "protocol.max_epochs": 5}
    defaults = {"lr": 1e-3}
    study, done, _ = open_study("/runs/a:random", storage("one"), 0, 4, defaults, settings=first)
    assert study.user_attrs[SETTINGS_ATTR] == first and done == 0
    with pytest.raises(ConfigError, match=r"already holds the study '/runs/a:random' of a "
                       r"protocol with other settings \(protocol\.max_epochs\)"):  # fmt: skip
        open_study("/runs/a:random", storage("one"), 0, 4, defaults, settings=other)
    # the protocol that made it continues; another storage takes the other protocol
    open_study("/runs/a:random", storage("one"), 0, 4, defaults, settings=first)
    study, _, _ = open_study("/runs/a:random", storage("two"), 0, 4, defaults, settings=other)
    assert study.user_attrs[SETTINGS_ATTR] == other


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_damaged_study_storage_is_named_in_one_line_and_left_as_it_is(kind, damage, tmp_path):
    from src.data.arrays import DataError
    from src.protocol.storage import StorageError
    from src.protocol.study import open_study

    path = tmp_path / ("studies.journal" if kind == "journal" else "studies.db")
    url = str(path) if kind == "journal" else f"sqlite:///{path}"
    study, _, _ = open_study("random", url, 0, 4, {"lr": 1e-3})
    for value in (0.5, 0.6):
        trial = study.ask()
        study.tell(trial, value)
    data = path.read_bytes()
    if damage == "truncated" and kind == "sqlite":
        data = data[: len(data) // 3]
    elif damage == "truncated":  # a journal cut inside its first line: no operation readable
        data = b'{"op_code": 0, "worker_id": "x", "study_na'
    else:
        data = b"\x00\x01 not a storage\n{\n"
    path.write_bytes(data)
    with pytest.raises(StorageError) as caught:
        open_study("random", url, 0, 4, {"lr": 1e-3})
    message = user_message(caught.value)
    assert isinstance(caught.value, DataError) and "\n" not in message
    assert message.startswith(f"{path} is not a readable study storage (")
    assert "restore it from a copy, or move it away to search" in message.lower()
    assert path.read_bytes() == data  # left as it was


def test_a_journal_cut_inside_its_last_line_continues(tmp_path):
    """What a process killed while writing leaves: Optuna skips the partial line."""
    from src.protocol.study import open_study

    path = tmp_path / "studies.journal"
    study, _, _ = open_study("random", str(path), 0, 4, {"lr": 1e-3})
    for value in (0.5, 0.6):
        study.tell(study.ask(), value)
    whole = path.read_bytes()
    path.write_bytes(whole[:-9])  # the last operation (the second tell) cut short
    study, done, stopped = open_study("random", str(path), 0, 4, {"lr": 1e-3})
    assert (done, stopped) == (1, 1)  # the cut trial is closed and will run again
    study.tell(study.ask(), 0.7)  # appends after the removed part: the file stays readable
    assert whole.rstrip(b"\n").split(b"\n")[-1] not in path.read_bytes()
    study, done, stopped = open_study("random", str(path), 0, 4, {"lr": 1e-3})
    assert (done, stopped) == (2, 0)


def test_the_catalogue_declares_exactly_what_validation_runs_log():
    """Every value gzsl_results logs is declared once; the scores a run may be selected on are
    the declared ones, never γ or a tie count; protocol.csv reports the declared ones."""
    import torch

    from src.core.metric_catalogue import BY_NAME, REPORTED
    from src.metrics import GZSLScores, gzsl_results
    from src.metrics.bootstrap import METRICS
    from src.protocol.report.results import METRICS as COLUMNS

    scores = GZSLScores(
        seen_distances=torch.tensor([[0.1, 0.7, 0.9, 0.8], [0.6, 0.2, 0.8, 0.9]]),
        seen_labels=torch.tensor([0, 1]),
        unseen_distances=torch.tensor([[0.9, 0.8, 0.3, 0.5], [0.7, 0.9, 0.6, 0.4]]),
        unseen_labels=torch.tensor([2, 3]),
        seen_classes=torch.tensor([0, 1]),
        unseen_classes=torch.tensor([2, 3]),
    )
    logged = gzsl_results(scores, 0.05)
    assert set(logged) == set(BY_NAME)
    scores_logged = {f"val/{n}" for n in logged if BY_NAME[n].higher_is_better is not None}
    assert set(validation_metrics()) == scores_logged == set(VALIDATION_METRICS)
    assert not {"val/gamma", "val/ties", "val/zsl_ties"} & set(validation_metrics())
    assert METRICS == REPORTED and COLUMNS == tuple(f"test/{n}" for n in REPORTED)
    assert all(BY_NAME[n].higher_is_better for n in REPORTED)


# ------------------------------------------------------------- continuing another protocol
def test_a_different_protocol_in_the_same_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    cfg = compose_config(TINY, folder, config_name="protocol")
    check_same_config(cfg, folder)
    other = compose_config([*TINY, "protocol.max_epochs=5"], folder, config_name="protocol")
    with pytest.raises(RunFolderError, match=r"protocol\.max_epochs.*same command"):
        check_same_config(other, folder)
    assert not list(folder.glob(".*.tmp"))  # the saved settings were written whole


def test_a_continuation_with_other_settings_is_refused_in_one_line(cli, tmp_path):
    code, text = cli(*TINY, "protocol.threads=2")  # a first run, stopped by the data spy
    assert code == 1 and READ_DATA in text
    assert (tmp_path / "run" / "protocol_config.yaml").is_file()
    code, text = cli(*TINY, "protocol.max_epochs=5", "protocol.seeds=[7]")
    assert_one_line(code, text, f"{tmp_path / 'run'} holds a protocol run with other settings")
    assert "(protocol.max_epochs, protocol.seeds)" in text
    # the number of threads changes the speed, not the results: not compared, it continues
    code, text = cli(*TINY, "protocol.threads=1")
    assert code == 1 and READ_DATA in text


def test_a_protocol_saved_with_a_package_level_target_continues(tmp_path):
    """Configs once named classes by their package (``src.models.MetricZSLSystem``): such a
    folder continues; another class is still refused."""
    folder = tmp_path / "run"
    cfg = compose_config(TINY, folder, config_name="protocol")
    check_same_config(cfg, folder)
    saved = folder / "protocol_config.yaml"
    text = saved.read_text()
    full = "src.models.system.MetricZSLSystem"
    assert full in text
    saved.write_text(text.replace(full, "src.models.MetricZSLSystem"))
    check_same_config(cfg, folder)
    saved.write_text(text.replace(full, "src.models.ESZSLClassifier"))
    with pytest.raises(RunFolderError, match=r"model\._target_"):
        check_same_config(cfg, folder)


@pytest.mark.slow
def test_cli_process_refuses_repeated_seeds_in_one_line(tmp_path):
    """A real ``python -m src.protocol``: one line, exit status 1, before the (absent) data."""
    args = ["data=cub", f"data.data_dir={tmp_path}", "protocol.seeds=[1,1]"]
    result = run_cli("src.protocol", [*args, f"hydra.run.dir={tmp_path / 'run'}"], check=False)
    text = result.stdout + result.stderr
    assert_one_line(result.returncode, text, "protocol.seeds=[1, 1] is invalid")


def test_the_protocols_models_are_read_off_conf_model_and_a_new_one_is_one_yaml(tmp_path):
    """References and objectives come from each model option's class: the shipped ones keep
    their kinds, and a closed-form reference added as one YAML (here naming ESZSL's class under
    another name) is accepted by ``protocol.references`` as an untrained reference."""
    import shutil

    from src.protocol.model_kinds import model_kinds

    kinds = model_kinds()
    assert set(kinds.untrained) == {"nearest_signature", "eszsl", "sae", "untrained"}
    assert set(kinds.trained) == {"ale", "devise", "sje"}
    assert set(kinds.objectives) == {"metric", "ale", "devise", "sje"}
    conf = tmp_path / "conf"
    shutil.copytree(config_dir(), conf)
    (conf / "model" / "ridge_both.yaml").write_text(
        "_target_: src.models.eszsl.ESZSLClassifier\ngammas: [1.0]\nlambdas: [1.0]\n"
    )
    assert "ridge_both" in model_kinds(conf).untrained
    cfg = compose_config(["protocol.references=[ridge_both]"], tmp_path / "run",
                         config_name="protocol")  # fmt: skip
    with pytest.raises(ConfigError, match=r"^protocol\.references=\[.ridge_both.\] is invalid"):
        check_protocol_settings(cfg.protocol, config_dir())  # not in the shipped configs
    check_protocol_settings(cfg.protocol, conf)
