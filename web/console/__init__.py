"""The web console under /console: staff sign in, read the inbox and customers, and act with
the same crm services the managers' Telegram chat uses (front-ends are peers)."""
