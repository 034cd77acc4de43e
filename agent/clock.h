/*
 * clock.h: the two clocks the code reads, in microseconds.
 *
 * Wall time is what rows and API messages carry (since the epoch); monotonic
 * time is for measuring and bounding work, immune to clock steps.
 */
#ifndef RA_CLOCK_H
#define RA_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline uint64_t
clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

#endif
