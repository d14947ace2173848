"""Orders imported from a CSV file in the console (admins): the same importer as `crm orders
import` (crm/imports/orders.py), run as a background task of the server, its progress and then
its report (rows stored, the bad ones by line, field and reason) on a page that asks again
every half second (htmx polling) until the import is over.

A job lives in the memory of the process that runs it: its page is answered by that process
(several `crm run` behind one address need sticky sessions for it; the orders are in the
database either way). Finished jobs are kept for their pages until `KEPT` newer ones exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field

import structlog
from aiohttp import web

from crm.errors import CrmError, NotFound
from crm.imports.batch import ImportReport
from crm.imports.orders import OrderImporter
from crm.roles import Permission
from crm.services import Core
from web.console.guard import PATH, Visit, redirect, staff

log = structlog.get_logger(__name__)

KEPT = 50
BATCH = 500  # rows per transaction: the progress moves on after each
MAX_NAME = 200


@dataclass
class ImportJob:
    id: str
    manager_id: int
    filename: str
    size: int
    notify: bool
    dry_run: bool
    position: int = 0
    report: ImportReport | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.report is not None or self.error is not None

    @property
    def percent(self) -> int:
        if self.report is not None:
            return 100
        return min(99, self.position * 100 // self.size) if self.size else 0

    def advance(self, position: int) -> None:
        self.position = max(self.position, min(position, self.size))


JOBS = web.AppKey("import_jobs", dict[str, ImportJob])


async def _run(job: ImportJob, core: Core, path: str, actor: str) -> None:
    try:
        job.report = await OrderImporter(core, actor=actor, notify=job.notify,
                                         batch_size=BATCH).run(
            path, dry_run=job.dry_run, progress=job.advance)
    except CrmError as e:  # the file as a whole (encoding, header): said on the page
        job.error = str(e).replace(path, job.filename)
    except Exception:
        log.exception("console.import_failed", job=job.id, file=job.filename)
        job.error = "an error on our side; the log has the detail"
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _keep(jobs: dict[str, ImportJob], job: ImportJob) -> None:
    jobs[job.id] = job
    finished = [j for j in jobs.values() if j.done]
    for old in finished[:max(0, len(jobs) - KEPT)]:
        del jobs[old.id]


def _save(upload: web.FileField) -> tuple[str, int]:
    fd, path = tempfile.mkstemp(prefix="crm-import-", suffix=".csv")
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(upload.file, out)
    return path, os.path.getsize(path)


@staff(Permission.ORDER_IMPORT)
async def import_page(visit: Visit) -> web.Response:
    mine = [j for j in visit.request.app[JOBS].values() if j.manager_id == visit.manager.id]
    return visit.render("order_import.html", {"jobs": list(reversed(mine))[:10],
                                              "error": None})


@staff(Permission.ORDER_IMPORT)
async def start_import(visit: Visit) -> web.Response:
    form = await visit.request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField) or not upload.filename:
        mine = [j for j in visit.request.app[JOBS].values()
                if j.manager_id == visit.manager.id]
        return visit.render("order_import.html", {
            "jobs": list(reversed(mine))[:10], "error": "choose a CSV file first"},
            status=422)
    path, size = await asyncio.to_thread(_save, upload)
    job = ImportJob(secrets.token_urlsafe(12), visit.manager.id, upload.filename[:MAX_NAME],
                    size, notify=form.get("notify") == "on", dry_run=form.get("dry_run") == "on")
    _keep(visit.request.app[JOBS], job)
    job.task = asyncio.create_task(_run(job, visit.core, path, visit.actor))
    return redirect(f"{PATH}/orders/import/{job.id}")


@staff(Permission.ORDER_IMPORT)
async def import_progress(visit: Visit) -> web.Response:
    job = visit.request.app[JOBS].get(visit.request.match_info["job"])
    if job is None or job.manager_id != visit.manager.id:
        raise NotFound("no such import")
    partial = visit.request.query.get("part") == "progress"
    return visit.render("import_progress.html" if partial else "import_job.html", {"job": job})


async def stop_jobs(app: web.Application) -> None:
    """On shutdown: an import under way stops; its batch under way rolls back, the batches
    before it stay (importing the file again finishes it: rows are upserts)."""
    running = [j.task for j in app[JOBS].values() if j.task is not None and not j.task.done()]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
