import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _add_worker_heartbeat() -> None:
    from crm.heartbeats import WorkerHeartbeat

    app.steps["worker"].add(WorkerHeartbeat)


_add_worker_heartbeat()


@signals.worker_init.connect  # the main process (the pool `solo`; prefork children inherit it)
@signals.worker_process_init.connect  # each prefork child, once its task modules are loaded
def _tune_garbage_collector(**kwargs) -> None:
    from crm.gc_tuning import tune

    tune()
