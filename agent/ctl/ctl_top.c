// SPDX-License-Identifier: Apache-2.0
/*
 * sluicectl top: the busiest Services by new flows per second, from the
 * kernel's counters, redrawn every --interval seconds like top(1); q or
 * Ctrl-C quits. --once, or output that is not a terminal: one table from
 * two samples --interval apart (scripts and tests).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "ctl/top_text.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int sample(struct ctl *ctl, const struct datapath_ops *ops, struct top_sample *s,
		  unsigned int *have)
{
	int err;

	free(s->v);
	s->t = now_mono();
	err = flow_counters_read(ops, &ctl->cfg, &s->v, &s->n, have);
	if (err)
		fprintf(stderr, "sluicectl: cannot read the %s datapath's counters: %s\n",
			ops->name, strerror(-err));
	return err;
}

static void title(FILE *out, const struct datapath_ops *ops, double interval,
		  const struct top_sample *cur)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	fprintf(out, "sluicectl top - %s - datapath %s - every %gs - %zu Services counted\n\n",
		when, ops->name, interval, cur->n);
}

/* Waits up to ms for a key; true if it was q (or the input closed). */
static bool quit_key(int ms)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, ms) <= 0)
		return false;
	if (read(STDIN_FILENO, &c, 1) != 1)
		return true;
	return c == 'q' || c == 'Q';
}

static int parse_args(int argc, char **argv, double *interval, long *rows, bool *once)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		char *end;

		if (!strcmp(a, "--once")) {
			*once = true;
			continue;
		}
		if ((!strcmp(a, "--interval") || !strcmp(a, "-d") || !strcmp(a, "-n")) &&
		    i + 1 < argc)
			val = argv[++i];
		else if (!strncmp(a, "--interval=", 11))
			val = a + 11, a = "--interval";
		else
			return ctl_usage_error("top: unexpected argument \"%s\" (usage: top "
					       "[--interval=S] [-n N] [--once])",
					       a);
		errno = 0;
		if (!strcmp(a, "-n")) {
			*rows = strtol(val, &end, 10);
			if (errno || end == val || *end || *rows < 1)
				return ctl_usage_error(
					"top: -n \"%s\" is not a number of rows (1 or more)", val);
		} else {
			*interval = strtod(val, &end);
			if (errno || end == val || *end || !(*interval >= 0.1 && *interval <= 3600))
				return ctl_usage_error(
					"top: --interval \"%s\" is not a number of seconds "
					"from 0.1 to 3600",
					val);
		}
	}
	return 0;
}

int cmd_top(struct ctl *ctl, int argc, char **argv)
{
	struct top_sample prev = { 0 }, cur = { 0 };
	const struct datapath_ops *ops;
	struct termios saved, raw;
	bool once = false, tty_in = false;
	double interval = 2;
	long rows = 20;
	unsigned int have = 0;
	int err;

	err = parse_args(argc, argv, &interval, &rows, &once);
	if (err)
		return err;
	ops = ctl_in_place(ctl, false);
	if (!ops)
		return 1;
	if (sample(ctl, ops, &prev, &have))
		return 1;
	if (once || !isatty(STDOUT_FILENO)) {
		usleep((useconds_t)(interval * 1e6));
		err = sample(ctl, ops, &cur, &have);
		if (!err)
			top_render(stdout, &prev, &cur, have, (size_t)rows);
		free(prev.v);
		free(cur.v);
		return err ? 1 : 0;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &saved)) {
		/* Keys without Enter and without echo; restored on every way out. */
		raw = saved;
		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tty_in = !tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	while (!stop) {
		double deadline = now_mono() + interval;

		while (!stop) {
			int ms = (int)((deadline - now_mono()) * 1000);

			if (ms <= 0)
				break;
			if (tty_in ? quit_key(ms) : (usleep(ms * 1000), false))
				stop = 1;
		}
		if (stop)
			break;
		if (sample(ctl, ops, &cur, &have)) {
			err = 1;
			break;
		}
		fputs("\033[H\033[2J", stdout);
		title(stdout, ops, interval, &cur);
		top_render(stdout, &prev, &cur, have, (size_t)rows);
		fflush(stdout);
		free(prev.v);
		prev = cur;
		cur = (struct top_sample){ 0 };
	}
	if (tty_in)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	free(prev.v);
	free(cur.v);
	return err;
}
