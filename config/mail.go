package config

// Mail configures SMTP delivery of invoices.
type Mail struct{}

func (s *Mail) defaults() {}

func (s *Mail) validate(add func(field string, err error)) {}
