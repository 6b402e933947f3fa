package config

// OpenStack configures how Bilean authenticates to Keystone (clouds.yaml, OS_* environment) or reaches a standalone Gnocchi.
type OpenStack struct{}

func (s *OpenStack) defaults() {}

func (s *OpenStack) validate(add func(field string, err error)) {}
