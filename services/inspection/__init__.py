"""Inspection: Supervision spot-check results (監督抽查) at national, provincial and city level."""
