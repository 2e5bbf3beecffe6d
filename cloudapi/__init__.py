"""The WhatsApp Cloud API contract: signature check and webhook bodies into typed events."""
