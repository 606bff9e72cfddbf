"""What each porting event calls for, to whom, and when to try again: pure, no I/O."""
