# plot.gp - the chart of `make bench`, drawn from the data files that
# `mbx-bench --out DIR` writes beside results.txt:
#   gnuplot -e "dir='build/bench'" tests/bench/plot.gp   -> DIR/chart.png
#
# rate64.dat    path, M msg/s with 1 sender, M msg/s with 8 senders (64 B)
# tput.dat      size, then GB/s of every path (columns as in its header)
# pingpong.dat  path, p50, p99, p999 (microseconds)
# scale.dat     mailboxes, M msg/s of mbx send/recv and sendv/recvv 64
# A "?" is a figure that could not be measured.

if (!exists("dir")) dir = "build/bench"

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 1800,1150 font "sans,10"
} else {
	set terminal png size 1800,1150
}
set output dir."/chart.png"
set datafile missing "?"
set termoption noenhanced
set key top right
set grid ytics
set style fill solid 0.85 border -1
set style data histograms
set style histogram clustered gap 1
set boxwidth 0.9

# The table's first line names the machine and the date of the run.
machine = system("head -n 1 '".dir."/results.txt' 2>/dev/null")
set multiplot layout 2,2 title machine."\nmbx against a direct Unix socket, a one-process relay and POSIX queues, in the same run"

# 1. Small messages, one-way: messages per second.
set title "64 B one-way: messages/s (log scale)"
set ylabel "million messages/s"
set logscale y
set yrange [0.001:*]
set xtics rotate by 30 right scale 0 font ",9"
plot dir."/rate64.dat" using 2:xtic(1) title "1 sender", \
     ''              using 3 title "8 senders"

# 2. One-way throughput against message size.
set title "one-way throughput by message size (log scale)"
set ylabel "GB/s of payload"
set yrange [*:*]
set xtics norotate font ",10"
set style data linespoints
set key bottom right font ",9"
# Columns 2-6 are the baselines (dashed), 7-12 the mbx modes (solid).
plot for [c=2:6] dir."/tput.dat" using 0:c:xtic(1) \
     title columnhead(c) pointtype (c - 1) linewidth 2 dashtype 2, \
     for [c=7:12] dir."/tput.dat" using 0:c:xtic(1) \
     title columnhead(c) pointtype (c - 1) linewidth 2
set style data histograms
set key top right font ",10"

# 3. Ping-pong latency.
set title "64 B ping-pong round trip (lower is better)"
set ylabel "microseconds"
unset logscale y
set yrange [0:*]
set xtics rotate by 30 right scale 0 font ",9"
plot dir."/pingpong.dat" using 2:xtic(1) title "p50", \
     '' using 3 title "p99"

# 4. Throughput with many mailboxes existing.
set title "64 B one-way with N mailboxes existing (flat is the goal)"
set key top left
set ylabel "million messages/s"
set xlabel "mailboxes"
set xtics norotate
plot dir."/scale.dat" using 2:xtic(1) title "mbx send/recv", \
     '' using 3 title "mbx sendv/recvv 64"

unset multiplot
