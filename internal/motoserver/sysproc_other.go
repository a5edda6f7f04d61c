//go:build unix && !linux

package motoserver

import "syscall"

// sysProcAttr puts the server in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// waitExited would wait for pid to exit without reaping it; elsewhere than
// Linux it reports false at once and exec.Cmd.Wait does the waiting.
func waitExited(pid int) bool { return false }
