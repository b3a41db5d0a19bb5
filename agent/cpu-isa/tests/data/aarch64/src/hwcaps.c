/* Prints AT_HWCAP and AT_HWCAP2 in hex: what the (emulated) CPU offers, as the kernel would name it. */
#include <stdio.h>
#include <sys/auxv.h>
int main(void) {
  printf("%lx %lx\n", getauxval(AT_HWCAP), getauxval(AT_HWCAP2));
  return 0;
}
