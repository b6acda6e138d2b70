"""Pure decisions: plain data in and out, no I/O and no outside service library (an import contract
holds it). Schema, metrics, records, policy, gate, training, labels, intake planning."""
