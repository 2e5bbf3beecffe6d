"""What `rq cron` schedules (`wapulse cron`, or `rq cron workers.cron_config`)."""

from rq import cron

from workers import jobs
from workers.inbox import INGEST_QUEUE
from workers.reminders import DELIVERY_JOB_TIMEOUT_S, REMINDER_QUEUE

cron.register(jobs.recover_inbox, INGEST_QUEUE, interval=60, result_ttl=0, name="recover-inbox")
cron.register(jobs.sweep_tiers, INGEST_QUEUE, interval=60, result_ttl=0, name="sweep-tiers")
cron.register(jobs.deliver_due, REMINDER_QUEUE, interval=60, result_ttl=0, name="deliver-reminders",
              job_timeout=DELIVERY_JOB_TIMEOUT_S)
cron.register(jobs.refresh_figures, INGEST_QUEUE, interval=60, result_ttl=0, name="refresh-figures", job_timeout=1200)
cron.register(jobs.keep_statistics, INGEST_QUEUE, interval=15, result_ttl=0, name="keep-statistics")
cron.register(jobs.apply_retention, INGEST_QUEUE, cron="40 3 * * *", result_ttl=0, name="apply-retention", job_timeout=3600)
