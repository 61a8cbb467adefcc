"""Assessment: County standings against the year's quality revitalization targets (考核)."""
