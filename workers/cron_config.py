"""What `rq cron` schedules (`wapulse cron`, or `rq cron workers.cron_config`)."""

from rq import cron

from workers.figures import refresh_figures
from workers.inbox import INGEST_QUEUE
from workers.ingest import recover_inbox
from workers.reminders import DELIVERY_JOB_TIMEOUT_S, REMINDER_QUEUE, deliver_due
from workers.statistics import keep_statistics
from workers.sweep import sweep_tiers

cron.register(recover_inbox, INGEST_QUEUE, interval=60, result_ttl=0, name="recover-inbox")
cron.register(sweep_tiers, INGEST_QUEUE, interval=60, result_ttl=0, name="sweep-tiers")
cron.register(deliver_due, REMINDER_QUEUE, interval=60, result_ttl=0, name="deliver-reminders",
              job_timeout=DELIVERY_JOB_TIMEOUT_S)
cron.register(refresh_figures, INGEST_QUEUE, interval=60, result_ttl=0, name="refresh-figures", job_timeout=1200)
cron.register(keep_statistics, INGEST_QUEUE, interval=15, result_ttl=0, name="keep-statistics")
