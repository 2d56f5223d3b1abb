"""Who may see what: API keys now; roles and organisations later."""
