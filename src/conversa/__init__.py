"""Conversa: a WhatsApp-first contact center."""
