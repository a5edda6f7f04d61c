package motoserver

import (
	"syscall"
	"unsafe"
)

// sysProcAttr puts the server in its own process group, and has the kernel
// kill it should the test binary die without calling Stop (e.g. on a test
// timeout).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// waitExited blocks until process pid has exited, leaving it unreaped
// (a zombie) so its pid, and so its process group id, stay reserved until
// exec.Cmd.Wait reaps it. It reports whether it did so.
func waitExited(pid int) bool {
	const (
		pPID    = 1          // P_PID
		wNoWait = 0x01000000 // WNOWAIT
	)
	var info [16]uint64 // siginfo_t is 128 bytes
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|wNoWait, 0, 0)
		if errno != syscall.EINTR {
			return errno == 0
		}
	}
}
