"""Per-invocation log keys stay with their invocation, even when invocations run as threads of one process (the
local stack) — Powertools' thread-safe keys, bound by cutout.runtime.observability.bind_job."""

from __future__ import annotations

import threading

from cutout.runtime.observability import bind_job, clear_job, logger

from tests.support.observed import structured_logs


def test_concurrent_invocations_keep_their_own_job_keys(no_secrets_in_logs) -> None:
    # given: two invocations on two threads, each bound to its own job before either logs
    both_bound = threading.Barrier(2)

    def invocation(job_id: str) -> None:
        bind_job(job_id=job_id, source_key=f"incoming/{job_id}.png")
        both_bound.wait()
        logger.info("working", extra={"thread_job": job_id})
        clear_job()
        logger.info("between records", extra={"thread_job": job_id})

    # when: both log
    threads = [threading.Thread(target=invocation, args=(job,)) for job in ("job-a", "job-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # then: every line carries its own invocation's job (and correlation) id, and none after clear_job
    lines = [d for d in structured_logs(no_secrets_in_logs.lines) if "thread_job" in d]
    working = [d for d in lines if d["message"] == "working"]
    assert len(working) == 2
    for doc in working:
        assert doc["job_id"] == doc["correlation_id"] == doc["thread_job"]
        assert doc["source_key"] == f"incoming/{doc['thread_job']}.png"
    assert all("job_id" not in d for d in lines if d["message"] == "between records")
