from pathlib import Path

import pytest
import yaml

import lorareuse_plugin
from lorareuse_plugin.data.catalog import group_specs, rendered_files, task_specs


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False)


def test_every_task_and_group_registers(task_manager):
    expected = {s.name for s in task_specs()} | set(group_specs())
    assert expected <= set(task_manager.all_tasks)
    assert set(task_manager.all_groups) >= set(group_specs())
    required = {f"lorareuse_twohop_{f}{s}" for f in "fhr" for s in ("", "_cot", "_mc")}
    required |= {f"lorareuse_hop{h}_{f}" for h in (1, 2) for f in "fhr"}
    required |= {"lorareuse_twohop", "lorareuse_math", "lorareuse_probes", "lorareuse"}
    assert required <= expected


def test_committed_yaml_matches_the_catalog():
    task_dir = Path(lorareuse_plugin.TASKS_DIR)
    for rel, text in rendered_files().items():
        path = task_dir / rel
        assert path.exists(), f"{rel} missing: run python -m lorareuse_plugin.data.catalog"
        assert path.read_text() == text, f"{rel} is stale: run python -m lorareuse_plugin.data.catalog"
    generated = {p.relative_to(task_dir).as_posix() for p in task_dir.glob("*/*.yaml")}
    assert generated == set(rendered_files())


def test_every_task_has_version_and_prefixed_metadata():
    task_dir = Path(lorareuse_plugin.TASKS_DIR)
    for spec in task_specs():
        cfg = yaml.safe_load((task_dir / spec.folder / f"{spec.name}.yaml").read_text())
        assert cfg["metadata"]["version"] >= 1
        assert all(k == "version" or k.startswith("lorareuse_") for k in cfg["metadata"])
        assert all(k.startswith("lorareuse_") for k in cfg["dataset_kwargs"])


def _docs(tm, name):
    return list(tm.load([name])["tasks"][name].test_docs())


def test_task_loads_docs_and_honours_metadata_overrides(task_manager):
    from lm_eval.tasks import TaskManager

    docs = _docs(task_manager, "lorareuse_twohop_f")
    assert len(docs) == 100 and docs[0]["prompt"].startswith("Q: What is the capital")
    tm = TaskManager(
        include_path=str(lorareuse_plugin.TASKS_DIR),
        include_defaults=False,
        metadata={"lorareuse_seed": 7, "lorareuse_n_test": 5},
    )
    other = _docs(tm, "lorareuse_twohop_f")
    assert len(other) == 5 and other[0]["question"] != docs[0]["question"]


def test_misspelt_metadata_key_is_refused():
    from lm_eval.tasks import TaskManager

    from lorareuse_plugin.errors import ConfigError

    tm = TaskManager(
        include_path=str(lorareuse_plugin.TASKS_DIR), include_defaults=False, metadata={"lorareuse_sed": 7}
    )
    with pytest.raises(ConfigError, match="unknown task metadata key"):
        _docs(tm, "lorareuse_twohop_f")
