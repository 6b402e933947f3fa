package config

// Listener configures bilean listen: AMQP connection, exchanges, queue, event definitions, metrics address.
type Listener struct{}

func (s *Listener) defaults() {}

func (s *Listener) validate(add func(field string, err error)) {}
