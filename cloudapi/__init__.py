"""The WhatsApp Cloud API contract: signature check and webhook bodies into typed events."""

OWN_REMINDER_TAG = "wapulse:reminder:"
"""`biz_opaque_callback_data` of the reminders wapulse sends reps over WhatsApp: the statuses that
come back for them are the service's own traffic, not a customer's."""
