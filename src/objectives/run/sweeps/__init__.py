"""Multirun sweeps: each job records how it ended; the sweep summarises itself."""

from objectives.run.sweeps.job_record import JOB_FILE, read_job_records, record_job

__all__ = ["JOB_FILE", "read_job_records", "record_job"]
