import logging

from lorareuse_plugin.report.quiet import LM_EVAL_LOGGERS, NOT_FOR_A_LADDER, each_warning_once


def test_lm_eval_logs_its_repeated_advice_on_the_loggers_we_quiet():
    import lm_eval.api.task
    import lm_eval.models.huggingface

    assert lm_eval.api.task.eval_logger.name in LM_EVAL_LOGGERS
    assert lm_eval.models.huggingface.eval_logger.name in LM_EVAL_LOGGERS


def test_each_distinct_warning_is_said_once_inside_and_every_time_outside(caplog):
    task_logger = logging.getLogger("lm_eval.api.task")
    caplog.set_level(logging.WARNING)
    with each_warning_once():
        for _ in range(5):
            task_logger.warning("Using default max_gen_toks")
        task_logger.warning("lorareuse_twohop_f_cot: Using default max_gen_toks")  # per-task prefix
        task_logger.warning("another message")
        with each_warning_once():  # nested (demo around leaderboard): still once overall
            task_logger.warning("Using default max_gen_toks")
    task_logger.warning("Using default max_gen_toks")
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("Using default max_gen_toks") == 2
    assert messages.count("another message") == 1
    assert not task_logger.filters


def test_progress_bars_are_off_inside_and_back_after(capsys):
    from tqdm import tqdm

    from lorareuse_plugin.report.quiet import without_progress_bars

    with without_progress_bars():
        for _ in tqdm(range(3), desc="hidden bar", disable=False):
            pass
    assert "hidden bar" not in capsys.readouterr().err
    for _ in tqdm(range(3), desc="shown bar"):
        pass
    assert "shown bar" in capsys.readouterr().err


def test_git_hash_is_asked_quietly_outside_a_checkout(tmp_path, monkeypatch, capfd):
    from lm_eval import evaluator

    from lorareuse_plugin.report.quiet import quiet_git_hash

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    evaluator.get_git_commit_hash()  # lm-eval's own: git complains on stderr
    assert "not a git repository" in capfd.readouterr().err
    with quiet_git_hash():
        assert evaluator.get_git_commit_hash() is None
    assert "not a git repository" not in capfd.readouterr().err
    evaluator.get_git_commit_hash()  # restored on exit
    assert "not a git repository" in capfd.readouterr().err


def test_advice_about_what_a_ladder_does_on_purpose_is_not_said_inside(caplog):
    caplog.set_level(logging.WARNING)
    hf_logger, task_logger = logging.getLogger("lm_eval.models.huggingface"), logging.getLogger("lm_eval.api.task")
    with each_warning_once():
        hf_logger.warning(NOT_FOR_A_LADDER[0] + ". Many other model arguments may be ignored.")
        hf_logger.warning(NOT_FOR_A_LADDER[1] + ", assuming single-process call to evaluate()")
        task_logger.warning("lorareuse_twohop_f: " + NOT_FOR_A_LADDER[2] + " in console (as json string)")
    assert caplog.records == []
    task_logger.warning("lorareuse_twohop_f: " + NOT_FOR_A_LADDER[2])  # outside a ladder: lm-eval's as ever
    assert len(caplog.records) == 1


def test_the_environment_report_is_collected_once_per_ladder(monkeypatch):
    from lm_eval import evaluator

    from lorareuse_plugin.report.quiet import env_info_once

    calls = []
    original = evaluator.add_env_info

    def counting(storage):
        calls.append(1)
        storage.update({"pretty_env_info": "torch …", "lm_eval_version": "0.4.13"})

    monkeypatch.setattr(evaluator, "add_env_info", counting)
    first, second = {}, {"results": 1}
    with env_info_once():
        evaluator.add_env_info(first)
        evaluator.add_env_info(second)
    assert len(calls) == 1 and first["lm_eval_version"] == second["lm_eval_version"] == "0.4.13"
    assert second["results"] == 1  # the run's own keys are kept
    assert evaluator.add_env_info is counting  # restored on exit
    monkeypatch.setattr(evaluator, "add_env_info", original)
