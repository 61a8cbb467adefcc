"""Brand registry: Famous-brand listings (名牌產品) by tier, with their status history and statistics."""
