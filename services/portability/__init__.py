"""The portability service: can this number be ported into this account, and if not, why."""
