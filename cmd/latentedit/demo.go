package main

import (
	"io"
)

func runDemo(args []string, stdout, stderr io.Writer) error {
	return errUsage{errNotYet("demo")}
}

func errNotYet(s string) error { return notYetErr(s) }

type notYetErr string

func (e notYetErr) Error() string { return string(e) + ": not implemented yet" }
