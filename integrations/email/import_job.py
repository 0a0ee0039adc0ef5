"""A whole mailbox imported as a long job (R14, crm/jobs.py): the same poll by UID as beat's,
run to the end with progress (scanned / stored / total) and a heartbeat per batch of 100.

Beat's poll and the job take turns on the folder's row lock (inbound.py), so running both at
once imports nothing twice; one import per mailbox at a time (the job's lock key)."""

from crm import jobs

from .inbound import poll_account
from .models import EmailAccount

KIND = "email_import"


def start_import(account: EmailAccount, user=None):
    """Queue an import of the account's folder; JobBusy when one is queued or running."""
    return jobs.start_job(
        KIND,
        lock_key=f"email-account:{account.pk}",
        title=f"Import {account.imap_user} / {account.imap_folder}",
        params={"account_id": account.pk},
        user=user,
    )


def run_import(job, progress: jobs.Progress) -> dict:
    account = EmailAccount.objects.select_related("channel").get(pk=job.params["account_id"])
    progress.beat(scanned=0, stored=0)

    def on_batch(result):
        progress.beat(
            scanned=result.fetched,
            stored=result.stored,
            total=result.fetched + result.remaining,
        )

    result = poll_account(account, on_batch=on_batch)
    return {"scanned": result.fetched, "stored": result.stored}


def register() -> None:
    jobs.register_runner(KIND, run_import)
