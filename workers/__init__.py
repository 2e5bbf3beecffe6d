"""RQ workers: the inbox drain, the sweep and reminder delivery, with their settings."""
