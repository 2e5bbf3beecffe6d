"""Expected parse results for the recorded-style Cloud API webhook fixtures.

EXPECTED maps each fixture file stem (fixtures/cloudapi/<stem>.json, and the scenario
fixtures/scenarios/<stem>.jsonl) to the items a parser should produce, in body order:
(kind, type, customer). kind is message | status | echo | preference | identity | error | backfill;
customer is the wa_id when the body gives one for that person, else the BSUID, and None
for errors that are not tied to a customer. Ignored fields map to [].

For the .jsonl scenario EXPECTED holds the items of all lines concatenated in file order
(the duplicate redelivery line counts again); EXPECTED_BY_LINE keeps them per line.

CUSTOMER_COUNTRY maps every customer wa_id or BSUID (incl. parent BSUIDs, new numbers and
shared-contact wa_ids) that appears in any fixture to its ISO 3166 alpha-2 country.
"""

EXPECTED = {
    "account_update__verified_account": [],
    "calls__connect": [],
    "conversation_insights_update__future_field": [],
    "history__declined": [
        ("error", "2593109", None),
    ],
    "history__messages": [
        # a message the business sent gives an echo and the status its history_context reports
        ("message", "text", "34612345678"),
        ("echo", "text", "34612345678"),
        ("status", "read", "34612345678"),
        ("message", "media_placeholder", "34612345678"),
        ("echo", "text", "919876543210"),
        ("status", "delivered", "919876543210"),
        ("message", "text", "919876543210"),
        ("echo", "media_placeholder", "919876543210"),
        ("status", "sent", "919876543210"),
        ("echo", "text", "6281234567890"),
        ("status", "failed", "6281234567890"),
        # and how far the back-fill has come: phase 0, chunk 2, 55%
        ("backfill", "history", None),
    ],
    "message_template_quality_update__yellow": [],
    "message_template_status_update__approved": [],
    "messages__audio__file": [
        ("message", "audio", "5511991234567"),
    ],
    "messages__audio__voice": [
        ("message", "audio", "5511987654321"),
    ],
    "messages__button": [
        ("message", "button", "34612345678"),
    ],
    "messages__contacts": [
        ("message", "contacts", "34612345678"),
    ],
    "messages__document": [
        ("message", "document", "4915112345678"),
    ],
    "messages__edit": [
        ("message", "edit", "34612345678"),
    ],
    "messages__errors__throughput_130429": [
        ("error", "130429", None),
    ],
    "messages__image": [
        ("message", "image", "16505551234"),
    ],
    "messages__image__frequently_forwarded": [
        ("message", "image", "525512345678"),
    ],
    "messages__image__media_error_131052": [
        ("message", "image", "919876543210"),
    ],
    "messages__interactive__button_reply": [
        ("message", "interactive", "16505551234"),
    ],
    "messages__interactive__call_permission_reply": [
        ("message", "interactive", "525512345678"),
    ],
    "messages__interactive__list_reply": [
        ("message", "interactive", "919876543210"),
    ],
    "messages__interactive__list_reply_no_description": [
        ("message", "interactive", "34612345678"),
    ],
    "messages__interactive__missing_object_error_131000": [
        ("message", "interactive", "5511991234567"),
        ("error", "131000", None),
    ],
    "messages__interactive__nfm_reply": [
        ("message", "interactive", "918765432109"),
    ],
    "messages__location": [
        ("message", "location", "33612345678"),
    ],
    "messages__location__named": [
        ("message", "location", "16505551234"),
    ],
    "messages__mixed__messages_statuses_errors": [
        ("message", "text", "34612345678"),
        ("status", "read", "6281234567890"),
        ("error", "131057", None),
    ],
    "messages__mixed__multi_entry": [
        ("message", "text", "16505551234"),
        ("message", "image", "919876543210"),
        ("status", "delivered", "6281234567890"),
        ("message", "text", "4915112345678"),
        ("message", "text", "33612345678"),
        ("message", "text", "4915112345678"),
    ],
    "messages__order": [
        ("message", "order", "33612345678"),
    ],
    "messages__poll": [
        ("message", "poll", "16505551234"),
    ],
    "messages__reaction": [
        ("message", "reaction", "16505551234"),
    ],
    "messages__reaction__removed_empty": [
        ("message", "reaction", "5511987654321"),
    ],
    "messages__reaction__removed_omitted": [
        ("message", "reaction", "16505551234"),
    ],
    "messages__revoke": [
        ("message", "revoke", "34612345678"),
    ],
    "messages__status-deleted": [
        ("status", "deleted", "33612345678"),
    ],
    "messages__status-delivered": [
        ("status", "delivered", "16505551234"),
    ],
    "messages__status-delivered__bsuid_only": [
        ("status", "delivered", "IN.90218374650192837465"),
    ],
    "messages__status-delivered__group": [
        ("status", "delivered", "918765432109"),
    ],
    "messages__status-failed__marketing_opt_out": [
        ("status", "failed", "5511991234567"),
    ],
    "messages__status-failed__reengagement": [
        ("status", "failed", "6285712345678"),
    ],
    "messages__status-failed__unreachable": [
        ("status", "failed", "33698765432"),
    ],
    "messages__status-mixed__several_messages": [
        ("status", "sent", "16505551234"),
        ("status", "sent", "919876543210"),
        ("status", "delivered", "16505551234"),
        ("status", "read", "5511987654321"),
        ("status", "read", "919876543210"),
        ("status", "sent", "5511987654321"),
        ("status", "played", "5511987654321"),
    ],
    "messages__status-played": [
        ("status", "played", "5511987654321"),
    ],
    "messages__status-read": [
        ("status", "read", "919876543210"),
    ],
    "messages__status-read__parent_recipient_user_id": [
        ("status", "read", "16505551234"),
    ],
    "messages__status-sent": [
        ("status", "sent", "6281234567890"),
    ],
    "messages__status-sent__recipient_parent_user_id": [
        ("status", "sent", "16505551234"),
    ],
    "messages__sticker": [
        ("message", "sticker", "966501234567"),
    ],
    "messages__system__customer_changed_number": [
        ("identity", "customer_changed_number", "4915112345678"),
    ],
    "messages__system__customer_identity_changed": [
        ("identity", "customer_identity_changed", "33612345678"),
    ],
    "messages__system__user_changed_number": [
        ("identity", "user_changed_number", "16505551234"),
    ],
    "messages__system__user_changed_user_id": [
        ("identity", "user_changed_user_id", "DE.41029384756610293847"),
    ],
    "messages__text": [
        ("message", "text", "16505551234"),
    ],
    "messages__text__bsuid_only": [
        ("message", "text", "DE.41029384756610293847"),
    ],
    "messages__text__context_reply": [
        ("message", "text", "919876543210"),
    ],
    "messages__text__emoji": [
        ("message", "text", "5511991234567"),
    ],
    "messages__text__forwarded": [
        ("message", "text", "525512345678"),
    ],
    "messages__text__integer_timestamp": [
        ("message", "text", "6281234567890"),
    ],
    "messages__text__parent_bsuid": [
        ("message", "text", "16505551234"),
    ],
    "messages__text__referral_ctwa": [
        ("message", "text", "918765432109"),
    ],
    "messages__text__referral_status_ad": [
        ("message", "text", "6285712345678"),
    ],
    "messages__text__referred_product": [
        ("message", "text", "4915112345678"),
    ],
    "messages__text__unicode_arabic": [
        ("message", "text", "966501234567"),
    ],
    "messages__text__unicode_chinese": [
        ("message", "text", "8613812345678"),
    ],
    "messages__text__unicode_spanish": [
        ("message", "text", "34612345678"),
    ],
    "messages__timeline__tier_moves": [
        ("message", "text", "919812345670"),
        ("message", "text", "919812345670"),
        ("message", "text", "5511987654321"),
        ("message", "text", "919812345670"),
        ("message", "text", "919812345670"),
        ("message", "text", "5511987654321"),
        ("message", "text", "919812345670"),
        ("message", "text", "919812345670"),
        ("message", "text", "919812345670"),
    ],
    "messages__timeline__two_weeks": [
        ("message", "text", "34655123456"),
        ("status", "sent", "34655123456"),
        ("status", "delivered", "34655123456"),
        ("message", "text", "34655123456"),
        ("status", "read", "34655123456"),
        ("status", "sent", "34655123456"),
        ("status", "read", "34655123456"),
        ("message", "image", "34655123456"),
        ("status", "sent", "34655123456"),
        ("status", "delivered", "34655123456"),
        ("status", "read", "34655123456"),
        ("message", "text", "5511987654321"),
        ("status", "sent", "5511987654321"),
        ("status", "delivered", "5511987654321"),
        ("message", "text", "34655123456"),
        ("status", "read", "34655123456"),
        ("status", "sent", "34655123456"),
        ("status", "delivered", "34655123456"),
        ("message", "text", "34655123456"),
        ("status", "read", "5511987654321"),
        ("status", "sent", "34655123456"),
        ("status", "read", "34655123456"),
        ("message", "interactive", "34655123456"),
        ("message", "order", "34655123456"),
        ("status", "sent", "34655123456"),
        ("status", "delivered", "34655123456"),
        ("status", "read", "34655123456"),
        ("message", "reaction", "34655123456"),
        ("status", "failed", "33687654321"),
        ("message", "text", "34655123456"),
        ("message", "text", "GB.58820193746512098374"),
        ("status", "sent", "GB.58820193746512098374"),
        ("status", "delivered", "GB.58820193746512098374"),
        ("message", "audio", "5511987654321"),
        ("status", "sent", "5511987654321"),
        ("status", "delivered", "5511987654321"),
        ("status", "read", "5511987654321"),
        ("status", "sent", "34655123456"),
        ("status", "delivered", "34655123456"),
        ("status", "read", "34655123456"),
        ("message", "text", "34655123456"),
        ("status", "sent", "34655123456"),
        ("status", "delivered", "34655123456"),
    ],
    "messages__unknown": [
        ("message", "unknown", "918765432109"),
    ],
    "messages__unsupported__coexistence_131060": [
        ("message", "unsupported", "525512345678"),
    ],
    "messages__unsupported__edit": [
        ("message", "unsupported", "34612345678"),
    ],
    "messages__unsupported__poll_creation": [
        ("message", "unsupported", "5511991234567"),
    ],
    "messages__video": [
        ("message", "video", "6281234567890"),
    ],
    "phone_number_quality_update__throughput_upgrade": [],
    "smb_app_state_sync__contacts": [],
    "smb_message_echoes__edit": [
        ("echo", "edit", "34612345678"),
    ],
    "smb_message_echoes__image": [
        ("echo", "image", "16505551234"),
    ],
    "smb_message_echoes__revoke": [
        ("echo", "revoke", "16505551234"),
    ],
    "smb_message_echoes__text": [
        ("echo", "text", "34612345678"),
    ],
    "smb_message_echoes__text__to_user_id_only": [
        ("echo", "text", "IN.90218374650192837465"),
    ],
    "user_id_update__change": [
        ("identity", "user_id_update", "12195555358"),
    ],
    "user_id_update__change__no_wa_id": [
        ("identity", "user_id_update", "DE.41029384756610293847"),
    ],
    "user_preferences__resume": [
        ("preference", "resume", "5511991234567"),
    ],
    "user_preferences__signup": [
        ("preference", "signup", "919876543210"),
    ],
    "user_preferences__stop": [
        ("preference", "stop", "16505551234"),
    ],
}

EXPECTED_BY_LINE = {
    "messages__timeline__two_weeks": [
        [("message", "text", "34655123456")],
        [("status", "sent", "34655123456")],
        [("status", "delivered", "34655123456")],
        [("message", "text", "34655123456")],
        [("status", "read", "34655123456")],
        [("status", "sent", "34655123456")],
        [("status", "read", "34655123456")],
        [("message", "image", "34655123456")],
        [("status", "sent", "34655123456")],
        [("status", "delivered", "34655123456")],
        [("status", "read", "34655123456")],
        [("message", "text", "5511987654321")],
        [("status", "sent", "5511987654321"), ("status", "delivered", "5511987654321")],
        [("message", "text", "34655123456")],
        [("status", "read", "34655123456")],
        [("status", "sent", "34655123456")],
        [("status", "delivered", "34655123456")],
        [("message", "text", "34655123456")],
        [("status", "read", "5511987654321")],
        [("status", "sent", "34655123456")],
        [("status", "read", "34655123456")],
        [("message", "interactive", "34655123456")],
        [("message", "order", "34655123456")],
        [("status", "sent", "34655123456")],
        [("status", "delivered", "34655123456")],
        [("status", "read", "34655123456")],
        [("message", "reaction", "34655123456")],
        [("status", "failed", "33687654321")],
        [("message", "text", "34655123456")],
        [("message", "text", "GB.58820193746512098374")],
        [("status", "sent", "GB.58820193746512098374")],
        [("status", "delivered", "GB.58820193746512098374")],
        [("message", "audio", "5511987654321")],
        [("status", "sent", "5511987654321")],
        [("status", "delivered", "5511987654321")],
        [("status", "read", "5511987654321")],
        [("status", "sent", "34655123456")],
        [("status", "delivered", "34655123456")],
        [("status", "read", "34655123456")],
        [("message", "text", "34655123456")],
        [("status", "sent", "34655123456")],
        [("status", "delivered", "34655123456")],
    ],
}

CUSTOMER_COUNTRY = {
    "12195555358": "US",
    "14155550829": "US",
    "16505551234": "US",
    "33612345678": "FR",
    "33687654321": "FR",
    "33698765432": "FR",
    "34612345678": "ES",
    "34655123456": "ES",
    "4915112345678": "DE",
    "4917612345678": "DE",
    "525512345678": "MX",
    "5511987654321": "BR",
    "5511991234567": "BR",
    "6281234567890": "ID",
    "6285712345678": "ID",
    "8613812345678": "CN",
    "918765432109": "IN",
    "919876543210": "IN",
    "966501234567": "SA",
    "BR.31958820461730095521": "BR",
    "BR.70261849305518273640": "BR",
    "CN.91827364500192837465": "CN",
    "DE.30495817263540918273": "DE",
    "DE.41029384756610293847": "DE",
    "DE.93847561029384756102": "DE",
    "DE.ENT.20938475610293847561": "DE",
    "DE.ENT.55810293847561029384": "DE",
    "ES.60372918845120397766": "ES",
    "ES.88120457739160284453": "ES",
    "FR.47192038465512093847": "FR",
    "GB.58820193746512098374": "GB",
    "ID.50918273645501928374": "ID",
    "ID.66102938475610293847": "ID",
    "IN.11029384756610293845": "IN",
    "IN.74410293857716203948": "IN",
    "IN.90218374650192837465": "IN",
    "MX.77120938465502918374": "MX",
    "SA.22193847566019284751": "SA",
    "US.13491208655302741918": "US",
    "US.20834719562038471155": "US",
    "US.ENT.11815799212886844830": "US",
    "US.ENT.90127384651029384756": "US",
}
