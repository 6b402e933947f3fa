package config

// Balance configures prepaid balances: warning threshold, escalation (notify, stop, suspend), grace period, dry run.
type Balance struct{}

func (s *Balance) defaults() {}

func (s *Balance) validate(add func(field string, err error)) {}
