"""Finance: the monthly reconciliation of donations, its report, and the donation corrections workflow."""
