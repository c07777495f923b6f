// Placeholder: replaced by the topology implementation.
