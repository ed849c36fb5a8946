package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metrics is one scrape of the operator's Prometheus endpoint: every
// sample by its name and labels as written ("name{a=\"b\"}").
type metrics map[string]float64

// scrape reads the operator's metrics at url.
func scrape(url string) metrics {
	m := metrics{}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return m
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			continue
		}
		m[l[:i]] = v
	}
	return m
}

// sum adds the samples of a metric over all its label sets that contain
// every one of the given label pairs (`outcome="accepted"`).
func (m metrics) sum(name string, labels ...string) float64 {
	var s float64
	for k, v := range m {
		base, rest, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
			}
		}
		if ok {
			s += v
		}
	}
	return s
}

// commitStats are the store's group commits between two scrapes.
type commitStats struct {
	Commits      float64
	WritesPer    float64
	MeanDuration time.Duration
}

func commitsBetween(a, b metrics) commitStats {
	n := b.sum("meetergo_operator_receiver_store_commit_writes_count") - a.sum("meetergo_operator_receiver_store_commit_writes_count")
	if n <= 0 {
		return commitStats{}
	}
	w := b.sum("meetergo_operator_receiver_store_commit_writes_sum") - a.sum("meetergo_operator_receiver_store_commit_writes_sum")
	d := b.sum("meetergo_operator_receiver_store_commit_duration_seconds_sum") - a.sum("meetergo_operator_receiver_store_commit_duration_seconds_sum")
	return commitStats{Commits: n, WritesPer: w / n, MeanDuration: time.Duration(d / n * float64(time.Second))}
}
