"""The tenancy REST API: teams and members, tokens, audit log, session login, platform pause."""
