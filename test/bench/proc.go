package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// process is a snapshot of a process's memory and CPU time, from /proc.
type process struct {
	RSS, Anon, File int64 // bytes
	CPU             time.Duration
}

// readProcess reads /proc/<pid>/status and /proc/<pid>/stat. Anonymous and
// file-backed memory are reported apart: bbolt's memory-mapped file shows in
// RSS but is page cache, not heap.
func readProcess(pid int) process {
	var p process
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(status), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			p.RSS = kb << 10
		case "RssAnon:":
			p.Anon = kb << 10
		case "RssFile:":
			p.File = kb << 10
		}
	}
	stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
		f := strings.Fields(string(stat)[i+2:])
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			p.CPU = time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
		}
	}
	return p
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// machineCPU is the machine's CPU time by kind, from /proc/stat (in ticks).
type machineCPU struct {
	User, System, Idle, IOWait, SoftIRQ, Steal, Total float64
}

func readMachineCPU() machineCPU {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var v [10]float64
	for i := 1; i < len(f) && i <= 10; i++ {
		v[i-1], _ = strconv.ParseFloat(f[i], 64)
	}
	// user nice system idle iowait irq softirq steal guest guest_nice
	m := machineCPU{User: v[0] + v[1], System: v[2] + v[5], Idle: v[3], IOWait: v[4], SoftIRQ: v[6], Steal: v[7]}
	m.Total = m.User + m.System + m.Idle + m.IOWait + m.SoftIRQ + m.Steal
	return m
}

// busy is the share of the machine's CPU time between a and b that was
// not idle (iowait counts as idle).
func busy(a, b machineCPU) float64 {
	t := b.Total - a.Total
	if t <= 0 {
		return 0
	}
	return 1 - (b.Idle+b.IOWait-a.Idle-a.IOWait)/t
}
