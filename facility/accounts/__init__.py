"""Who acts: OS users and their roles, local web accounts, and their sessions."""
