package main

import "github.com/spf13/cobra"

// commands holds the subcommands that live in their own files (listen, balance, outbox, policy,
// usage, runs…). Each file registers its constructor from init, so adding a command touches no
// other file.
var commands []func(a *app) *cobra.Command

// register adds a subcommand constructor; call it from an init function.
func register(newCmd func(a *app) *cobra.Command) { commands = append(commands, newCmd) }
