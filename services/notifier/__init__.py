"""The notifier: tells customers and the ops desk what happened to a port, by e-mail and signed webhook."""
