"""Contact import at 100,000 rows (issue 12): time and peak memory of a real import — queued by
`manage.py import_contacts`, run by a `conversa_worker` process in batches — beside a same-run
baseline: PostgreSQL `COPY` of the same file into a plain table (no parsing, validation or
normalisation: the floor for moving those bytes into the server), and COPY of the rows the import
stored into an empty copy of `contacts_contact` with all its indexes (the floor for those rows).

    .venv/bin/python bench/import_contacts.py [--rows 100000] [--batch 1000]

Seconds: the import's run (the worker's batches, stored as `run_seconds`) and its end-to-end time
(the command's upload check, with Django's start-up, plus queue and run) beside COPY's connect +
stream time. Memory is the worker's peak resident set (VmHWM) before the import (idle, Django loaded) and
after it; the COPY baseline's is the peak of a small Python process streaming the file to COPY.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import time
from pathlib import Path

from harness import PYTHON, REPO, Stack, emit, log

BAD_EVERY = 97  # about 1 %: a phone that is no number, a bad email, a missing first name in turn
DUPLICATE_EVERY = 211  # about 0.5 %: a phone already seen earlier in the file


def write_file(path: Path, rows: int) -> dict[str, int]:
    bad = duplicates = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("Celular,Nombre,Apellido,Email,DNI,City\n")
        for n in range(rows):
            phone, first, email = f"11 4{n // 10000:03d}-{n % 10000:04d}", f"Nombre {n}", f"c{n}@example.com"
            if n % BAD_EVERY == 0:
                bad += 1
                kind = (n // BAD_EVERY) % 3
                phone = "sin número" if kind == 0 else phone
                email = "no-es-email" if kind == 1 else email
                first = "" if kind == 2 else first
            elif n % DUPLICATE_EVERY == 0 and n:
                duplicates += 1
                phone = f"11 4{(n - 1) // 10000:03d}-{(n - 1) % 10000:04d}"
            out.write(f'{phone},{first},Apellido {n},{email},{20_000_000 + n},"Ciudad, {n % 50}"\n')
    return {"bad": bad, "duplicates": duplicates}


def vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


COPY_SCRIPT = """
import sys, time, psycopg
started = time.perf_counter()
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.execute("DROP TABLE IF EXISTS copy_baseline")
    conn.execute("CREATE TABLE copy_baseline (phone text, first_name text, last_name text, email text, "
                 "dni text, city text)")
    with open(sys.argv[2], "rb") as f, conn.cursor().copy(
            "COPY copy_baseline FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
        while chunk := f.read(1 << 16):
            copy.write(chunk)
print(time.perf_counter() - started)
"""


def copy_baseline(stack: Stack, path: Path) -> dict[str, float]:
    proc = subprocess.Popen([PYTHON, "-c", COPY_SCRIPT, stack.database_url, str(path)], cwd=REPO,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise RuntimeError("COPY baseline failed")
    rows = stack.sql("SELECT count(*) FROM copy_baseline")[0][0]
    return {"seconds": round(float(output.decode().strip()), 2), "rows": rows,
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


COLUMNS = "database_id, phone, whatsapp_user_id, first_name, last_name, email, custom, created_at, updated_at"


def copy_indexed_baseline(stack: Stack, database_id: int) -> dict[str, float]:
    """COPY of the rows the import stored into an empty copy of contacts_contact with all its
    indexes and constraints (the partial unique phone index, the trigram search index): what the
    server's own bulk path pays for the same rows, index upkeep included."""
    with stack.connect() as conn:
        rows = bytearray()
        with conn.cursor().copy(f"COPY (SELECT {COLUMNS} FROM contacts_contact WHERE database_id = %s) "
                                "TO STDOUT", (database_id,)) as out:
            for chunk in out:
                rows += chunk
        conn.execute("DROP TABLE IF EXISTS copy_indexed")
        conn.execute("CREATE TABLE copy_indexed (LIKE contacts_contact INCLUDING ALL)")
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY copy_indexed ({COLUMNS}) FROM STDIN") as into:
            into.write(bytes(rows))
        seconds = time.perf_counter() - started
        count = conn.execute("SELECT count(*) FROM copy_indexed").fetchone()
    return {"seconds": round(seconds, 2), "rows": count[0] if count else 0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    with Stack(web_processes=1, task_workers=0, name="import",
               extra_env={"CONVERSA_IMPORT_BATCH": str(args.batch)}) as stack:
        stack.manage("load_demo")
        path = stack.dir / "contacts.csv"
        shape = write_file(path, args.rows)
        file_mb = round(path.stat().st_size / 1e6, 1)
        log(f"file: {args.rows} rows, {file_mb} MB")

        baseline = copy_baseline(stack, path)
        log(f"COPY baseline: {baseline}")

        stack.start_workers(1)
        stack.wait_for_workers(1)
        worker = stack._procs["worker-1"]
        idle_kb = vm_hwm_kb(worker.pid)
        started = time.perf_counter()
        queued = json.loads(stack.manage("import_contacts", "--database", "Sales contacts", "--file", str(path),
                                         "--country", "AR").strip().splitlines()[-1])
        upload_seconds = time.perf_counter() - started
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            status = stack.sql("SELECT status, rows_done, created, skipped, failed, run_seconds FROM "
                               "contacts_contactimport WHERE id = %s", queued["import"])[0]
            if status[0] in ("done", "failed"):
                break
            time.sleep(0.2)  # polling another process's progress, as the page does
        total_seconds = time.perf_counter() - started
        peak_kb = vm_hwm_kb(worker.pid)
        contacts = stack.sql("SELECT count(*) FROM contacts_contact c JOIN contacts_contactdatabase d "
                             "ON d.id = c.database_id WHERE d.name = 'Sales contacts'")[0][0]
        problems = stack.sql("SELECT count(*) FROM contacts_contactimportproblem")[0][0]
        database_id = stack.sql("SELECT id FROM contacts_contactdatabase WHERE name = 'Sales contacts'")[0][0]
        indexed = copy_indexed_baseline(stack, database_id)
        log(f"COPY into an indexed copy of contacts_contact: {indexed}")
        own_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    emit({
        "bench": "import_contacts",
        "rows": args.rows, "batch": args.batch, "file_mb": file_mb,
        "file_shape": shape,
        "import": {
            "status": status[0], "rows_done": status[1], "created": status[2], "skipped": status[3],
            "failed": status[4], "problems_reported": problems, "contacts_in_database": contacts,
            "upload_and_check_seconds": round(upload_seconds, 2),
            "run_seconds": round(status[5], 2), "total_seconds": round(total_seconds, 2),
            "rows_per_second": round(status[1] / status[5], 0) if status[5] else None,
            "worker_peak_rss_mb": round(peak_kb / 1024, 1), "worker_idle_rss_mb": round(idle_kb / 1024, 1),
            "worker_rss_growth_mb": round((peak_kb - idle_kb) / 1024, 1),
        },
        "baseline_copy": baseline,
        "baseline_copy_indexed": indexed,
        # The worker's batches against COPY's statement (both without process start-up).
        "ratio_import_run_to_copy_seconds": round(status[5] / baseline["seconds"], 1) if baseline["seconds"] else None,
        "ratio_import_run_to_indexed_copy_seconds": (round(status[5] / indexed["seconds"], 1)
                                                     if indexed["seconds"] else None),
        "bench_process_peak_rss_mb": round(own_kb / 1024, 1),
    })


if __name__ == "__main__":
    main()
