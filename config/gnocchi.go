package config

// Gnocchi configures usage from Gnocchi: meter definitions and which source is authoritative per resource type.
type Gnocchi struct{}

func (s *Gnocchi) defaults() {}

func (s *Gnocchi) validate(add func(field string, err error)) {}
