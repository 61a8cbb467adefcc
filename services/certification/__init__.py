"""Certification: Management-system certificates (ISO 9001, ISO 14001 …) of enterprises, with public verification."""
