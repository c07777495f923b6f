// Placeholder: replaced by the segment implementation.
