package config

// Documents configures the PDF and XLSX documents: issuer block (name, address, tax id, logo, bank details), locale.
type Documents struct{}

func (s *Documents) defaults() {}

func (s *Documents) validate(add func(field string, err error)) {}
