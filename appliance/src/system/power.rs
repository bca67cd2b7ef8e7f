//! The Raspberry Pi's undervoltage and throttling flags. (Being built with the display.)
