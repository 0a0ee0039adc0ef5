"""The collector of long-running processes (crm/gc_tuning.py): start-up frozen, the young
generation collected every GC_THRESHOLD[0] net allocations; "python" leaves CPython alone."""

import gc
import os
import subprocess
import sys
from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured

from crm import gc_tuning

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = "import gc, crm.asgi; print(','.join(map(str, gc.get_threshold())), gc.get_freeze_count())"


@pytest.fixture
def restored_gc():
    """Tests that tune this process's collector put CPython's state back."""
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def web_process(gc_threshold: str) -> subprocess.CompletedProcess:
    """A fresh interpreter loading the ASGI application, as uvicorn and daphne do."""
    env = dict(os.environ, GC_THRESHOLD=gc_threshold, DJANGO_SETTINGS_MODULE="crm.settings")
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_the_web_process_freezes_its_start_up_and_collects_less_often():
    result = web_process("10000,10,10")
    assert result.returncode == 0, result.stderr
    thresholds, frozen = result.stdout.split()
    assert thresholds == "10000,10,10"
    # Django, DRF, Channels and every view module: well over a hundred thousand objects.
    assert int(frozen) > 50_000


def test_python_keeps_cpythons_collector():
    result = web_process("python")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["700,10,10", "0"]


def test_a_wrong_setting_stops_the_process_with_a_message_naming_it():
    result = web_process("10000,ten")
    assert result.returncode != 0
    assert "GC_THRESHOLD must be three positive integers" in result.stderr
    assert "'10000,ten'" in result.stderr


@pytest.mark.parametrize("value", ["", "1,2", "a,b,c", "0,10,10", "10,-1,10", "1,2,3,4"])
def test_thresholds_refuses_anything_but_three_positive_integers(value):
    with pytest.raises(ImproperlyConfigured, match="GC_THRESHOLD"):
        gc_tuning.thresholds(value)


def test_thresholds_reads_the_setting():
    assert gc_tuning.thresholds("20000,5,5") == (20000, 5, 5)
    assert gc_tuning.thresholds(" python ") is None


def test_the_drainer_tunes_before_it_drains(settings, restored_gc, db):
    from django.core.management import call_command

    settings.GC_THRESHOLD = "12345,10,10"
    seen = {}

    def run(self):
        seen["threshold"] = gc.get_threshold()
        seen["frozen"] = gc.get_freeze_count()
        return 0

    with mock.patch("communications.drainer.Drainer.run", run):
        if os.environ.get("DATABASE_URL", "").startswith("postgres"):
            call_command("drain_webhooks")
        else:
            pytest.skip("drain_webhooks needs PostgreSQL")
    assert seen["threshold"] == (12345, 10, 10)
    assert seen["frozen"] > 0


@pytest.mark.parametrize("signal_name", ["worker_init", "worker_process_init"])
def test_celery_workers_tune_when_they_start(settings, restored_gc, signal_name):
    from celery import signals

    import crm.celery  # noqa: F401 - connects the handlers

    settings.GC_THRESHOLD = "23456,10,10"
    getattr(signals, signal_name).send(sender=None)
    assert gc.get_threshold() == (23456, 10, 10)
    assert gc.get_freeze_count() > 0
