// sgemm throughput of oneDNN (dnnl_sgemm) and OpenBLAS (cblas_sgemm, 1 thread) on
// the matrix shapes of our im2col convolutions; docs/performance.md has the results.
//
//   gcc -O2 bench/sgemm/sgemm.c -o /tmp/sgemm -ldl && OMP_NUM_THREADS=2 /tmp/sgemm
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
typedef void (*cblas_t)(int,int,int,int,int,int,float,const float*,int,const float*,int,float,float*,int);
typedef int (*dnnl_t)(char,char,long,long,long,float,const float*,long,const float*,long,float,float*,long);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){
  void*o=dlopen("libopenblas.so.0",RTLD_NOW); void*d=dlopen("libdnnl.so.2",RTLD_NOW);
  cblas_t cb=(cblas_t)dlsym(o,"cblas_sgemm"); dnnl_t dn=(dnnl_t)dlsym(d,"dnnl_sgemm");
  void (*st)(int)=dlsym(o,"openblas_set_num_threads"); st(1);
  int shapes[][4]={{2048,2048,2048,0},{65536,32,576,0},{576,32,65536,1},{65536,576,32,0},{4096,128,2304,0},{16384,64,512,0},{65536,1152,64,0},{1152,64,65536,1}};
  for(int s=0;s<8;s++){int m=shapes[s][0],n=shapes[s][1],k=shapes[s][2],ta=shapes[s][3];
    float*a=malloc(4L*m*k),*b=malloc(4L*k*n),*c=malloc(4L*m*n);
    for(long i=0;i<(long)m*k;i++)a[i]=i%7*0.1f; for(long i=0;i<(long)k*n;i++)b[i]=i%5*0.1f;
    int lda=ta?m:k;
    double t0,t1,t2; cb(101,ta?112:111,111,m,n,k,1,a,lda,b,n,0,c,n);
    t0=now(); for(int r=0;r<3;r++) cb(101,ta?112:111,111,m,n,k,1,a,lda,b,n,0,c,n); t1=now();
    dn(ta?'T':'N','N',m,n,k,1,a,lda,b,n,0,c,n);
    t1=now(); for(int r=0;r<3;r++) dn(ta?'T':'N','N',m,n,k,1,a,lda,b,n,0,c,n); t2=now();
    double f=2.0*m*n*k*3/1e9;
    printf("%6d %5d %6d ta=%d openblas1 %.1f GF/s  dnnl %.1f GF/s\n",m,n,k,ta,f/(t1-t0),f/(t2-t1));
    free(a);free(b);free(c);}
}
