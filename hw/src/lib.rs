//! Hardware access for plugnode: e-ink panels, their keys, and simulated stand-ins.
