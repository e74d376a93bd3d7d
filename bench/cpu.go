package bench

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time (user + system) used so far by this process and
// its waited-for children — git http-backend (the git server runs in the
// bench process), git and kustomize CLIs. On a shared machine it is a
// steadier measure of an event's cost than wall time.
func CPUTime() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

// ChildCPUTime is the CPU time used so far by this process's waited-for
// children alone. During offshoot's own events the only children are the
// git server's processes (git http-backend, receive-pack, unpack-objects,
// the connectivity check): it is the server's share of an event.
func ChildCPUTime() time.Duration {
	var kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return time.Duration(kids.Utime.Nano()) + time.Duration(kids.Stime.Nano())
}
