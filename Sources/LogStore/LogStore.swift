// Placeholder until the log store lands.
