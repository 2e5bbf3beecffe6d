"""Tests of the WhatsApp chat export reader."""
